"""The production topology: the Procfile's web, worker and clock processes sharing one PostgreSQL database."""
