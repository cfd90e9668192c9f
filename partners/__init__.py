"""Partner adapter plugins. The contract every plugin implements is in :mod:`partners.base`;
plugins receive a frozen, minimized :class:`~partners.base.PartnerEvent` and never the ORM."""

from partners.base import DeliveryError, PartnerAdapter, PartnerEvent, SharedMember

__all__ = ["DeliveryError", "PartnerAdapter", "PartnerEvent", "SharedMember"]
