"""Creates the registry's roles: a frontend team group per client, and the release managers."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

TEAM_PERMISSIONS = [
    "view_client", "view_endpoint", "view_majorversion",
    "add_contractversion", "change_contractversion", "view_contractversion",
    "add_fieldrule", "change_fieldrule", "delete_fieldrule", "view_fieldrule",
]  # fmt: skip
RELEASE_MANAGER_PERMISSIONS = [
    "view_client", "view_endpoint", "change_endpoint", "view_majorversion",
    "change_majorversion", "view_contractversion", "change_contractversion", "view_fieldrule",
]  # fmt: skip
CLIENTS = ("mobile", "web", "partner")


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; create them now so the
    # groups can be given theirs on a fresh database.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")

    def grant(name, codenames):
        group, _ = group_model.objects.get_or_create(name=name)
        group.permissions.add(
            *permission_model.objects.filter(
                content_type__app_label="contracts", codename__in=codenames
            )
        )

    for client in CLIENTS:
        grant(f"{client} frontend team", TEAM_PERMISSIONS)
    grant("release managers", RELEASE_MANAGER_PERMISSIONS)


def remove_roles(apps, schema_editor):
    names = [f"{client} frontend team" for client in CLIENTS] + ["release managers"]
    apps.get_model("auth", "Group").objects.filter(name__in=names).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("contracts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
