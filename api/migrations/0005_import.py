from tortoise import migrations
from tortoise.migrations import operations as ops
from uuid import uuid4
from tortoise import fields

# Bulk import: per-file checkpoints and the members an import created (written by hand from
# the generated operations; see api/models/onboarding.py).

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ImportedMember',
            fields=[
                ('member_id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('file_sha256', fields.CharField(db_index=True, max_length=64)),
                ('imported_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('password_set_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'imported_members', 'app': 'models', 'pk_attr': 'member_id', 'table_description': 'A member an import created, without a password. The password-reset flow picks up rows'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='MemberImport',
            fields=[
                ('file_sha256', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('file_format', fields.CharField(max_length=8)),
                ('rows', fields.IntField()),
                ('batch_size', fields.IntField()),
                ('batches_done', fields.IntField(default=0)),
                ('imported', fields.IntField(default=0)),
                ('skipped', fields.IntField(default=0)),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('finished_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'member_imports', 'app': 'models', 'pk_attr': 'file_sha256', 'table_description': "One file being imported, keyed by its SHA-256. Each batch's transaction advances"},
            bases=['Model'],
        ),
    ]
