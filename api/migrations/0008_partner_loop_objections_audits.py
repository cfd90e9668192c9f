from tortoise import fields, migrations
from tortoise.migrations import operations as ops

# The partner loop (LOOP-2): objections, partner audits and suspensions
# (written by hand; see api/models/partner_audits.py).

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='PartnerObjection',
            fields=[
                ('id', fields.UUIDField(primary_key=True, unique=True, db_index=True)),
                ('member_id', fields.UUIDField(db_index=True)),
                ('partner_id', fields.UUIDField(db_index=True)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'partner_objections', 'app': 'models',
                     'unique_together': (('member_id', 'partner_id'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PartnerAudit',
            fields=[
                ('id', fields.UUIDField(primary_key=True, unique=True, db_index=True)),
                ('partner_id', fields.UUIDField(db_index=True)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('outcome', fields.CharField(max_length=16)),
                ('notes', fields.TextField(null=True, unique=False)),
                ('next_due_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('auditor', fields.CharField(max_length=200)),
                ('recorded_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('overdue_mailed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'partner_audits', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PartnerSuspension',
            fields=[
                ('partner_id', fields.UUIDField(primary_key=True, unique=True, db_index=True)),
                ('since', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('audit_id', fields.UUIDField()),
            ],
            options={'table': 'partner_suspensions', 'app': 'models', 'pk_attr': 'partner_id'},
            bases=['Model'],
        ),
    ]
