"""Table naming, definitions, bootstrap and catalog inspection."""

from lean_ops_spark.catalog.bootstrap import BootstrapResult, TableStatus, bootstrap_tables
from lean_ops_spark.catalog.naming import TableRef, TopicTables, topic_tables
from lean_ops_spark.catalog.schemas import TableDefinition, topic_table_definitions

__all__ = [
    "BootstrapResult",
    "TableDefinition",
    "TableRef",
    "TableStatus",
    "TopicTables",
    "bootstrap_tables",
    "topic_table_definitions",
    "topic_tables",
]
