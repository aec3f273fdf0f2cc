"""The seed's design: transactional outbox + relay + RabbitMQ + consumer with a dedup table."""
