-- Runs once, when the PostgreSQL container starts on an empty data volume
-- (/docker-entrypoint-initdb.d). Each variant's `init` service also creates its databases if
-- they are missing, so this is the first-start convenience, not the only path.
CREATE DATABASE mq_orders;
CREATE DATABASE mq_inventory;
CREATE DATABASE wf_orders;
CREATE DATABASE wf_inventory;
-- Temporal's own stores (its auto-setup then only installs the schemas: SKIP_DB_CREATE=true).
CREATE DATABASE temporal;
CREATE DATABASE temporal_visibility;
