-- lean-ops Snowflake schema refresh for environment test
-- customer_orders: schema changed
-- daily_sessions: new table

ALTER ICEBERG TABLE ANALYTICS.LAKEHOUSE.customer_orders REFRESH;

CREATE ICEBERG TABLE IF NOT EXISTS ANALYTICS.LAKEHOUSE.daily_sessions
  EXTERNAL_VOLUME = 'LEAN_OPS_TEST_VOLUME'
  CATALOG = 'LEAN_OPS_TEST_GLUE'
  CATALOG_TABLE_NAME = 'daily_sessions'
  CATALOG_NAMESPACE = 'lakehouse_semantic'
  AUTO_REFRESH = FALSE;

ALTER ICEBERG TABLE ANALYTICS.LAKEHOUSE.daily_sessions REFRESH;
