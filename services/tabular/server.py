"""Entry point: python -m services.tabular.server (settings: LUMEN_TABULAR_*)."""

from services.tabular.settings import TabularSettings
from shared.model_service import main

if __name__ == "__main__":
    main("tabular", TabularSettings, "services.tabular.app")
