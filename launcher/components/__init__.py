"""The training runtime's parts, in ESPnet3's layout: modeling, trainers, callbacks, data."""
