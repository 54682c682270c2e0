"""The release pipeline library: pydantic config models, pure builders, ComponentResources.

`__main__.py` at the project root is the Pulumi program; `python -m components` is the
command line (offline render, checks).
"""
