"""This recipe's System, as ESPnet3's "Customize the training loop" page sketches one:
`train()` builds the model, the recipe's own LightningModule and Trainer, and fits.

Selected by conf/training.yaml (`system: {_target_: src.system.MySystem}`)."""

from launcher.systems.asr.system import ASRSystem
from launcher.systems.base.training import _instantiate_model
from src.lightning_module import ClippedLossModule
from src.trainer import ClusterTrainer


class MySystem(ASRSystem):
    def train(self):
        config = self.training_config
        model = _instantiate_model(config)
        lit_model = ClippedLossModule(model, config)
        trainer = ClusterTrainer(
            model=lit_model,
            exp_dir=config.exp_dir,
            config=config.trainer,
            best_model_criterion=config.best_model_criterion,
        )
        trainer.fit()
