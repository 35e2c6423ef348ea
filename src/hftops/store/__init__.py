"""The store: schema (DDL), the chDB and ClickHouse-server backends behind one interface, and the reader."""
