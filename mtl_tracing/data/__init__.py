"""Data: the MultitaskData type, synthetic tasks (App. A.8), embeddings files.

Submodules are imported on use (``from mtl_tracing.data import synthetic``) so that loading one
loader never imports another's dependencies.
"""
