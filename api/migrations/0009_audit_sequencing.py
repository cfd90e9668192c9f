from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

# Audit entries are appended without a lock and chained afterwards: ``pos`` is the place in
# the chain the chaining step gives them (api/platform/audit.py). Written by hand.

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.AddField(
            model_name='AuditEntry',
            name='pos',
            field=fields.BigIntField(null=True, unique=True),
        ),
    ]
