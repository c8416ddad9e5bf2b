"""What every service of the platform shares: envelope, Kafka I/O, outbox, database, config,
logs, metrics and the gRPC bootstrap. Nothing service-specific lives here."""
