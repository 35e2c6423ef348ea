"""The platform's vocabulary: component names, stream keys, table names, typed bus records, wire formats."""
