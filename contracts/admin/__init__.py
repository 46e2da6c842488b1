"""The registry in the Django admin: drafts for frontend teams, a review queue for release
managers, and the audit history of everything.

Every workflow step calls ``contracts.services``; this package only decides what each
role sees and turns ``ActionError`` into a message or a form error. ``base`` holds the
per-client, read-only-history base; ``forms`` the field picker and workflow forms;
``panels`` the shared HTML fragments; ``workflow`` what the review and lifecycle pages
compute; ``versions`` and ``registry`` the ModelAdmins, registered here. Templates stay
under ``contracts/templates/admin/``.
"""

from __future__ import annotations

from django.contrib import admin

from contracts.admin.registry import ClientAdmin, EndpointAdmin, MajorVersionAdmin
from contracts.admin.versions import (
    ContractVersionAdmin,
    LifecycleProposalAdmin,
    ReviewQueueAdmin,
)
from contracts.models import (
    Client,
    ContractVersion,
    Endpoint,
    LifecycleProposal,
    MajorVersion,
    ReviewQueue,
)

admin.site.site_header = "BFF contract registry"
admin.site.site_title = "BFF contract registry"
admin.site.index_title = "Contracts, reviews and history"
admin.site.site_url = None  # the BFF has no HTML site to link back to

admin.site.register(ContractVersion, ContractVersionAdmin)
admin.site.register(ReviewQueue, ReviewQueueAdmin)
admin.site.register(LifecycleProposal, LifecycleProposalAdmin)
admin.site.register(Client, ClientAdmin)
admin.site.register(Endpoint, EndpointAdmin)
admin.site.register(MajorVersion, MajorVersionAdmin)

from contracts.api import admin as registry_api_admin  # noqa: E402, F401 - registers its pages
