"""Accelerated kernels of the renderer: ``triton_hashgrid`` (hash-grid lookups, forward and table
gradients), ``triton_march`` (the occupancy test of ray marching) and ``numba_avatar`` (the avatar's
real-time CPU path: rasterizer, shell samples, k-NN search and table lookups, compositing).

The torch code in ``genkit.render`` is the reference; each kernel is tested for parity against it (Triton
on the CPU with ``TRITON_INTERPRET=1``). ``genkit.render.backends`` picks which runs."""
