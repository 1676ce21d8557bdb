"""genkit.render: neural fields and avatars. Not built yet: see the open neural-fields issue."""
