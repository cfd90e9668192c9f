from tortoise import migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

# Jobs that read a few rows without scanning a million members (written by hand):
# - consent events by purpose and state: a consent partner's candidates (pull pages and the
#   sharing_catch_up job) read the members who gave the purpose from this index instead of
#   every member's events;
# - audit entries by action: the processing_record job reads the latest entry of its action
#   each run, which walked the whole trail back when that entry was old;
# - deletion duties: the deletion_duties job no longer checks every duty against the members
#   table each run (history_purge forgets a destroyed member's id in its duties); duties left
#   with the id of a member destroyed before this change lose it here, once.

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial'), ('models', '0003_partner_loop_events')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='ConsentEvent',
            index=Index(fields=['purpose', 'state', 'member_id']),
        ),
        ops.AddIndex(
            model_name='AuditEntry',
            index=Index(fields=['action', 'seq']),
        ),
        ops.RunSQL(
            'UPDATE deletion_duties SET member_id = NULL WHERE member_id IS NOT NULL AND NOT '
            'EXISTS (SELECT 1 FROM members WHERE members.id = deletion_duties.member_id)',
            reverse_sql='',
        ),
    ]
