"""Text-to-3D by score distillation (SDS, VSD) from a 2-D prior into a hash-grid field."""

from genkit.pipelines.text_to_3d.system import (
    ObjectField,
    TextTo3DConfig,
    load_object_field,
    render_field,
    text_to_3d,
    turntable,
)

__all__ = ["ObjectField", "TextTo3DConfig", "load_object_field", "render_field", "text_to_3d", "turntable"]
