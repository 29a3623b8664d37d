"""Business rules: the only code that writes to the database."""
