// Wire shapes of /api/users/ (API-CONTRACT.md §2.1, with §4.9: the profile carries is_staff).
import { Type, type Static } from 'typebox';
import { DateTime, Nullable, Paginated, PageQuerySchema } from '../../infra/http/schema.ts';
import { MAX_PASSWORD_LENGTH } from './passwords.ts';

export const User = Type.Object({
  id: Type.Integer(),
  email: Type.String(),
  username: Type.String(),
  first_name: Type.String(),
  last_name: Type.String(),
  phone: Type.String(),
  date_of_birth: Nullable(Type.String({ description: 'YYYY-MM-DD' })),
  newsletter_subscription: Type.Boolean(),
  created_at: DateTime,
  is_staff: Type.Boolean(),
});
export type User = Static<typeof User>;

const Password = Type.String({ minLength: 1, maxLength: MAX_PASSWORD_LENGTH });
const Email = Type.String({ minLength: 1, maxLength: 254, format: 'email' });
const Username = Type.String({
  minLength: 1,
  maxLength: 150,
  pattern: '^[\\w.@+-]+$',
  'x-message': 'Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.',
});
const Name = Type.String({ minLength: 1, maxLength: 30 });
const Phone = Type.String({ maxLength: 20 });

export const TokenPair = Type.Object({ refresh: Type.String(), access: Type.String() });

export const LoginBody = Type.Object({ email: Type.String({ minLength: 1, maxLength: 254 }), password: Password });
export const RefreshBody = Type.Object({ refresh: Type.String({ minLength: 1, maxLength: 4096 }) });
export const RefreshReply = Type.Object({ access: Type.String(), refresh: Type.String() });

export const RegisterBody = Type.Object({
  email: Email,
  username: Username,
  first_name: Name,
  last_name: Name,
  password: Password,
  password_confirm: Password,
  phone: Type.Optional(Phone),
  newsletter_subscription: Type.Optional(Type.Boolean()),
});
export type RegisterBody = Static<typeof RegisterBody>;

export const RegisterReply = Type.Object({ message: Type.String(), user: User, tokens: Type.Object({ access: Type.String(), refresh: Type.String() }) });

const ProfileFields = {
  username: Username,
  first_name: Name,
  last_name: Name,
  phone: Type.Optional(Phone),
  date_of_birth: Type.Optional(Nullable(Type.String({ maxLength: 10, description: 'YYYY-MM-DD' }))),
  newsletter_subscription: Type.Optional(Type.Boolean()),
};
/** PUT: username and names required; `id`, `email`, `created_at`, `is_staff` are read-only and ignored. */
export const ProfilePut = Type.Object(ProfileFields);
export const ProfilePatch = Type.Partial(Type.Object(ProfileFields));
export type ProfileChanges = Static<typeof ProfilePatch>;

export const PasswordChangeBody = Type.Object({ old_password: Password, new_password: Password, new_password_confirm: Password });
export type PasswordChangeBody = Static<typeof PasswordChangeBody>;

export const PasswordResetBody = Type.Object({ email: Email });
export const PasswordResetConfirmBody = Type.Object({ token: Type.String({ minLength: 1, maxLength: 200 }), new_password: Password, new_password_confirm: Password });
export type PasswordResetConfirmBody = Static<typeof PasswordResetConfirmBody>;

export const Message = Type.Object({ message: Type.String() });

export const AddressType = Type.Union([Type.Literal('shipping'), Type.Literal('billing')]);

export const Address = Type.Object({
  id: Type.Integer(),
  address_type: Type.String({ enum: ['shipping', 'billing'] }),
  street_address: Type.String(),
  apartment: Type.String(),
  city: Type.String(),
  state: Type.String(),
  postal_code: Type.String(),
  country: Type.String(),
  is_default: Type.Boolean(),
  created_at: DateTime,
  updated_at: DateTime,
  user: Type.Integer(),
});
export type Address = Static<typeof Address>;

const AddressFields = {
  address_type: Type.String({ enum: ['shipping', 'billing'] }),
  street_address: Type.String({ minLength: 1, maxLength: 255 }),
  apartment: Type.Optional(Type.String({ maxLength: 100 })),
  city: Type.String({ minLength: 1, maxLength: 100 }),
  state: Type.String({ minLength: 1, maxLength: 100 }),
  postal_code: Type.String({ minLength: 1, maxLength: 20 }),
  country: Type.String({ minLength: 1, maxLength: 100 }),
  is_default: Type.Optional(Type.Boolean()),
};
export const AddressBody = Type.Object(AddressFields);
export const AddressPatch = Type.Partial(Type.Object(AddressFields));
export type AddressInput = Static<typeof AddressPatch>;
export const AddressPage = Paginated(Address);
export const PageQuery = Type.Object(PageQuerySchema);

export const NewsletterBody = Type.Object({ email: Type.Optional(Type.String({ maxLength: 254 })) });
