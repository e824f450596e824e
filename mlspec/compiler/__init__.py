"""Typed program -> flax module (`model`), optax transformation and the jitted training
run (`trainer`), and the sizes the device needs (`sizes`)."""
