-- lean-ops Snowflake DDL for environment test (generated: edit the config, not this file)
-- Prerequisites: the external volume LEAN_OPS_TEST_VOLUME exists, and the IAM role of the catalog integration trusts Snowflake
-- (DESC CATALOG INTEGRATION shows GLUE_AWS_IAM_USER_ARN / GLUE_AWS_EXTERNAL_ID for its trust policy).

CREATE CATALOG INTEGRATION IF NOT EXISTS LEAN_OPS_TEST_GLUE
  CATALOG_SOURCE = GLUE
  TABLE_FORMAT = ICEBERG
  GLUE_AWS_ROLE_ARN = 'arn:aws:iam::123456789012:role/snowflake'
  GLUE_CATALOG_ID = '123456789012'
  GLUE_REGION = 'us-east-1'
  CATALOG_NAMESPACE = 'lakehouse_semantic'
  ENABLED = TRUE
  REFRESH_INTERVAL_SECONDS = 60;

CREATE ICEBERG TABLE IF NOT EXISTS ANALYTICS.LAKEHOUSE.customer_orders
  EXTERNAL_VOLUME = 'LEAN_OPS_TEST_VOLUME'
  CATALOG = 'LEAN_OPS_TEST_GLUE'
  CATALOG_TABLE_NAME = 'customer_orders'
  CATALOG_NAMESPACE = 'lakehouse_semantic'
  AUTO_REFRESH = FALSE;

CREATE ICEBERG TABLE IF NOT EXISTS ANALYTICS.LAKEHOUSE.daily_sessions
  EXTERNAL_VOLUME = 'LEAN_OPS_TEST_VOLUME'
  CATALOG = 'LEAN_OPS_TEST_GLUE'
  CATALOG_TABLE_NAME = 'daily_sessions'
  CATALOG_NAMESPACE = 'lakehouse_semantic'
  AUTO_REFRESH = FALSE;
