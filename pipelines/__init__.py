"""genkit.pipelines: diffusers-native pipelines (text-to-image now; FPDM, one-step students, text-to-3D later)."""
