from tortoise import migrations
from tortoise.migrations import operations as ops
from api.models.article5 import LegalDisclosureStatus
from api.models.enums import LegalBasis
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from uuid import uuid4
from tortoise import fields

# Article 5: legal-process disclosures and research dataset metadata (written by hand from
# the generated operations; see api/models/article5.py).

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='LegalDisclosure',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('member_id', fields.UUIDField(db_index=True)),
                ('authority', fields.CharField(max_length=120)),
                ('reference', fields.CharField(max_length=200)),
                ('legal_basis', fields.CharEnumField(description='CONSENT: CONSENT\nCONTRACT: CONTRACT\nLEGAL_OBLIGATION: LEGAL_OBLIGATION\nVITAL_INTEREST: VITAL_INTEREST', enum_type=LegalBasis, max_length=24)),
                ('fields_', fields.JSONField(source_field='fields', default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('justification', fields.TextField(unique=False)),
                ('notify_member', fields.BooleanField()),
                ('status', fields.CharEnumField(db_index=True, description='REQUESTED: REQUESTED\nAPPROVED: APPROVED\nREJECTED: REJECTED\nRELEASED: RELEASED', enum_type=LegalDisclosureStatus, max_length=16)),
                ('requested_by', fields.CharField(max_length=64)),
                ('requested_by_name', fields.CharField(max_length=64)),
                ('decided_by', fields.CharField(null=True, max_length=64)),
                ('decided_by_name', fields.CharField(null=True, max_length=64)),
                ('decision_note', fields.TextField(null=True, unique=False)),
                ('requested_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('released_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('review_due_at', fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'legal_disclosures', 'app': 'models', 'pk_attr': 'id', 'table_description': "A request from an authority for one member's data: requested by one admin, decided by"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ResearchDataset',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('created_by', fields.CharField(max_length=64)),
                ('k', fields.IntField()),
                ('attributes', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('rows', fields.IntField()),
                ('suppressed', fields.IntField()),
            ],
            options={'table': 'research_datasets', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One dataset handed out: parameters and counts, never the rows.'},
            bases=['Model'],
        ),
    ]
