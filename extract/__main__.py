from extract.cli import cli

cli()
