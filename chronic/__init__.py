"""chronic: chronic-disease prevention at population scale.

Importing the package does no work; each stage lives in its own subpackage
(`chronic.archive`, `chronic.synth`, ...) and is imported where it is used.
"""

__version__ = "0.1.0"
