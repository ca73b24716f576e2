"""`escalation schemas`: the Avro contracts under schemas/."""

from __future__ import annotations

import typer

app = typer.Typer(help="Avro contracts under schemas/.", no_args_is_help=True)


@app.command("freeze")
def freeze() -> None:
    """Record every changed top-level schema as its next released version."""
    from stream.serde import freeze as freeze_schema
    from stream.topics import load_definitions

    for name in sorted({d.value.schema_name for d in load_definitions().values()}):
        path = freeze_schema(name)
        typer.echo(f"{name}: {'released ' + str(path) if path else 'unchanged'}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="schemas")
