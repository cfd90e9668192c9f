from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

# The partner loop (LOOP-1): deletion duties created by member.erasure and member.revoked
# events (written by hand; see api/models/partner_loop.py).

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='DeletionDuty',
            fields=[
                ('event_id', fields.UUIDField(primary_key=True, unique=True, db_index=True)),
                ('partner_id', fields.UUIDField(db_index=True)),
                ('member_id', fields.UUIDField(null=True, db_index=True)),
                ('kind', fields.CharField(max_length=40)),
                ('fields_', fields.JSONField(source_field='fields', default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('due_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('confirmed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('confirmed_by', fields.CharField(null=True, max_length=16)),
                ('overdue_mailed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'deletion_duties', 'app': 'models', 'pk_attr': 'event_id'},
            bases=['Model'],
        ),
    ]
