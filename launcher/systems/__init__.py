"""Systems: a recipe's stages, in order."""
