"""The release pipeline library: pydantic config models, pure builders, ComponentResources.

`__main__.py` at the project root is the Pulumi program; `python -m components` is the
command line (offline render, checks).

`__version__` is the project's version (`python -m components --version`): the minor
number moves with each merged feature, the patch number with a fix, the major number
when a stack file or services.yaml needs editing to upgrade (README, "Versions").
"""

__version__ = "0.10.0"
