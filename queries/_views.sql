-- The four tables as views over the dataset folder's Parquet part files.
-- Only for the DuckDB shell started inside a dataset folder (`cd flashinfer-bench && duckdb`):
--   .read /path/to/queries/_views.sql
--   .read /path/to/queries/_macros.sql
--   .read /path/to/queries/leaderboard.sql
-- From Python and `fib query`, fib_data.sql.attach creates the same views.
CREATE OR REPLACE VIEW definitions AS SELECT * FROM read_parquet('data/definitions/*.parquet', union_by_name = true);
CREATE OR REPLACE VIEW workloads AS SELECT * FROM read_parquet('data/workloads/*.parquet', union_by_name = true);
CREATE OR REPLACE VIEW solutions AS SELECT * FROM read_parquet('data/solutions/*.parquet', union_by_name = true);
CREATE OR REPLACE VIEW evaluations AS SELECT * FROM read_parquet('data/evaluations/*.parquet', union_by_name = true);
