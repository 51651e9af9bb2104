"""SQL drivers: postgres, cockroach, mysql, mssql."""
