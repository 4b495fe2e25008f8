"""Planning a launch: find and compose the recipe, check everything, name each run."""
