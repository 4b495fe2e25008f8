"""A plain Hydra app: any task function runs on the launcher's executors."""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    # Stands for a training run: the value returned is what a sweeper optimises.
    return (cfg.lr - 0.01) ** 2 + cfg.layers * 1e-5


if __name__ == "__main__":
    main()
