from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from uuid import uuid4
from tortoise import fields

# Member passkeys (WebAuthn) and pending ceremony challenges (written by hand from the generated
# operations; see api/models/passkeys.py).

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Passkey',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('member_id', fields.UUIDField(db_index=True)),
                ('credential_hash', fields.CharField(unique=True, max_length=64)),
                ('credential_id', fields.BinaryField()),
                ('public_key', fields.BinaryField()),
                ('sign_count', fields.BigIntField(default=0)),
                ('transports', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('name_ct', fields.BinaryField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'passkeys', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One registered credential. Found at sign-in by the SHA-256 of its credential id (a fixed'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PasskeyChallenge',
            fields=[
                ('challenge_hash', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('purpose', fields.CharField(max_length=8)),
                ('member_id', fields.UUIDField(null=True)),
                ('expires_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'passkey_challenges', 'app': 'models', 'pk_attr': 'challenge_hash', 'table_description': 'A challenge handed out and not yet answered: only its SHA-256 is kept. Finishing deletes'},
            bases=['Model'],
        ),
    ]
