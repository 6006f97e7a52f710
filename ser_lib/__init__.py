"""Speech emotion recognition on RAVDESS: the library behind the ser-course notebooks."""
