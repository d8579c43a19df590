"""Operations: backups of a whole installation (PostgreSQL, object-store files, the agents'
memories, configuration), their restore, and the content digest that proves a restore."""
