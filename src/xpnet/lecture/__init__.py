"""The lecture's math, written once against the Python Array API.

:mod:`~xpnet.lecture.activations` (each ``g`` beside its ``g'``), :mod:`~xpnet.lecture.losses` (the lecture's
form and the fused, stable form), :mod:`~xpnet.lecture.initializers`, the building blocks
(:mod:`~xpnet.lecture.functional`: ``linear_forward`` ... ``update_parameters``, the lecture's chain literally),
the network's fused forward/backward pass as training runs it (:mod:`~xpnet.lecture.network`) and the
gradient check (:mod:`~xpnet.lecture.gradcheck`). No module here imports an array library: each gets the
namespace from its inputs or its caller.
"""
