"""The `pbt` command line. Subcommand groups live in their own modules and load lazily."""
