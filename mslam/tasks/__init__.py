"""One module per task: each builds its model (and later data and losses) from one YAML file."""
