//! Changes made from the monitoring console (`--console_admin_token`): deleting an offline
//! durable, deleting a channel that has no subscription, purging a channel's messages.

use crate::monitor::console::{AdminAction, AdminError};

use super::Engine;

impl Engine {
    /// Performs `action`; the caller flushes the store afterwards.
    pub(crate) fn admin(&mut self, action: AdminAction) -> Result<(), AdminError> {
        match action {
            AdminAction::DeleteChannel { channel } => {
                let ch = self
                    .channels
                    .get(&channel)
                    .ok_or_else(|| AdminError::UnknownChannel(channel.clone()))?;
                let subs = ch.stored_sub_count();
                if subs > 0 {
                    return Err(AdminError::ChannelInUse { channel, subs });
                }
                self.delete_channel(&channel);
                tracing::info!(channel = %channel, "channel deleted from the console");
                Ok(())
            }
            AdminAction::PurgeChannel { channel } => {
                let ch = self
                    .channels
                    .get_mut(&channel)
                    .ok_or_else(|| AdminError::UnknownChannel(channel.clone()))?;
                ch.store
                    .msgs
                    .purge()
                    .map_err(|e| AdminError::Store(e.to_string()))?;
                // Pending deliveries of purged messages end at their ack wait, as when limits
                // drop a message: the redelivery finds nothing and counts it as acked.
                tracing::info!(channel = %channel, "channel purged from the console");
                Ok(())
            }
            AdminAction::DeleteDurable {
                channel,
                client_id,
                durable,
            } => {
                let ch = self
                    .channels
                    .get(&channel)
                    .ok_or_else(|| AdminError::UnknownChannel(channel.clone()))?;
                let Some(&id) = ch.durables.get(&(client_id.clone(), durable.clone())) else {
                    return Err(AdminError::UnknownDurable {
                        channel,
                        client_id,
                        durable,
                    });
                };
                if self.subs.get(&id).is_some_and(|s| !s.offline) {
                    return Err(AdminError::DurableActive(durable));
                }
                self.remove_sub(id, true);
                tracing::info!(channel = %channel, client_id = %client_id, durable = %durable,
                    "durable deleted from the console");
                Ok(())
            }
        }
    }
}
