from tortoise import migrations
from tortoise.migrations import operations as ops
from uuid import uuid4
from tortoise import fields

# Accounts (api/models/accounts.py and new columns on members and refresh_sessions), written by
# hand from the generated operations.
#
# Case-insensitive user ids: ``members.user_id_idx`` is a keyed blind index and a migration has
# no keys, so existing rows get ``user_id_folded = false`` (their index is of the id as typed).
# Sign-in looks up the folded index and the as-typed one, and rewrites a legacy row's index on a
# successful sign-in; ``consentry migrate`` (which has the keys) then folds every legacy row and
# reports ids that differ only by case (both stay reachable by their exact spelling). Emails were
# indexed case-folded already. Existing addresses count as not yet verified.

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Member',
            name='email_verified_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Member',
            name='pending_email_ct',
            field=fields.BinaryField(null=True),
        ),
        ops.AddField(
            model_name='Member',
            name='user_id_folded',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name='RefreshSession',
            name='user_agent',
            field=fields.CharField(null=True, max_length=255),
        ),
        ops.CreateModel(
            name='AccountToken',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('purpose', fields.CharField(max_length=16)),
                ('member_id', fields.UUIDField(db_index=True)),
                ('email_idx', fields.CharField(null=True, max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'account_tokens', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A mailed token (email verification or password reset). Only its SHA-256 is stored:'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='MailSecret',
            fields=[
                ('notification_id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('secret_ct', fields.BinaryField()),
            ],
            options={'table': 'mail_secrets', 'app': 'models', 'pk_attr': 'notification_id', 'table_description': 'The token a queued mail carries, sealed under the KEK and bound to the notification:'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RevokedSession',
            fields=[
                ('seq', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('session_id', fields.CharField(db_index=True, max_length=36)),
                ('revoked_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'revoked_sessions', 'app': 'models', 'pk_attr': 'seq', 'table_description': 'An ended session (a refresh-token family). Processes read new rows by ``seq``, and rows older'},
            bases=['Model'],
        ),
    ]
