"""Imports every module that registers a job, so ``jobs run`` sees them all."""

# Each capability adds its module here (import for the side effect of @job registration).
