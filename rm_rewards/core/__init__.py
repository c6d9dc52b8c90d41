"""The reward core: the schema every stage speaks, the four reward kinds, the registry, compositions,
and applying many rewards to many samples."""
