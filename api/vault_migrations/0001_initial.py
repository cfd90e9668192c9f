from tortoise import migrations
from tortoise.migrations import operations as ops
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='RetainedRecord',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('member_id', fields.UUIDField(db_index=True)),
                ('reason', fields.CharField(max_length=16)),
                ('wrapped_key', fields.BinaryField(null=True)),
                ('kek_version', fields.IntField()),
                ('data_ct', fields.BinaryField()),
                ('retained_until', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'retained_records', 'app': 'vault', 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
