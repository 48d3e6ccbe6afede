"""segme model zoo (torch). Importing this package registers every architecture family."""

from segme.models import (  # noqa: F401  (imported for their @register_model side effects)
    deeplabv3plus,
    efficientnet_unet,
    mmnet,
    mnv3_unet,
    mobile_unet,
    modnet,
    portrait_net,
    prisma_net,
    sinet,
    slim_net,
    testing,
)
from segme.models.base import SegModel
from segme.models.registry import create_model, list_models, register_model

__all__ = ["SegModel", "create_model", "list_models", "register_model"]
