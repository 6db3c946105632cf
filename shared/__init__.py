"""Common server-side code of the lumen services: bootstrap, settings, errors,
interceptors, the model interface, the model repository and the dynamic batcher."""
