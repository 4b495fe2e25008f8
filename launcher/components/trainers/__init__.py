"""The Trainer wrapper and the Lightning plugins it adds."""
