from tortoise import migrations
from tortoise.migrations import operations as ops
from uuid import uuid4
from tortoise import fields

# Announcements fanned out by a job (written by hand from the generated operations; see
# api/models/announcements.py).

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Announcement',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('kind', fields.CharField(max_length=40)),
                ('subject', fields.CharField(max_length=200)),
                ('body', fields.TextField(unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('cursor', fields.UUIDField(null=True)),
                ('batches', fields.IntField(default=0)),
                ('notified', fields.IntField(default=0)),
                ('done_at', fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'announcements', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One message for every reachable member. The request that announces writes only this'},
            bases=['Model'],
        ),
    ]
