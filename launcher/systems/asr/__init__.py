"""The ASR System, by ESPnet3's import path (`espnet3.systems.asr.system`)."""
