"""Speech emotion recognition on RAVDESS: the library behind the ser-course notebooks."""

__version__ = "0.1.0"
